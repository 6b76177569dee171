"""``algotrade migrate beta1``: read Beta1's database, import it through each service's entry
point, report and verify. See docs/beta1-migration.md."""
