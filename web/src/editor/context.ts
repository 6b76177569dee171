/** What every node on the canvas reads: the catalog and where the problems are. */
import { createContext } from "react";
import { Catalog } from "./catalog";
import type { PlacedProblems } from "./problems";

export const CatalogContext = createContext<Catalog>(new Catalog([]));
export const ProblemsContext = createContext<PlacedProblems>({
  byNode: new Map(),
  byPort: new Map(),
  unplaced: [],
});
