/**
 * A file upload with progress. `fetch` cannot report how much of a request body has been sent,
 * so the upload goes through XMLHttpRequest, whose `upload.onprogress` does (for a multipart
 * body as for any other). Its failures become the same `ApiError`s as every other request's.
 */
import { ApiError, networkProblem, problemFrom } from "../api/problem";

export interface Upload<T> {
  done: Promise<T>;
  abort: () => void;
}

export function upload<T>(url: string, body: FormData, accessToken: string | null, onProgress: (sent: number, total: number) => void): Upload<T> {
  const xhr = new XMLHttpRequest();
  const done = new Promise<T>((resolve, reject) => {
    xhr.open("POST", url);
    if (accessToken !== null) xhr.setRequestHeader("Authorization", `Bearer ${accessToken}`);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
    xhr.onload = () => {
      let parsed: unknown = xhr.responseText;
      try {
        parsed = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: problemFrom keeps the text as the detail
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(parsed as T);
      else reject(new ApiError(problemFrom(xhr.status, parsed, xhr.statusText)));
    };
    xhr.onerror = () => reject(new ApiError(networkProblem(new Error("the upload was interrupted"))));
    xhr.onabort = () => reject(new ApiError({ ...networkProblem(new Error("you cancelled the upload")), title: "Upload cancelled" }));
    xhr.send(body);
  });
  return { done, abort: () => xhr.abort() };
}
