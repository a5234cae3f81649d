// Query parameters as kube-apiserver decodes them into its option structs (PodExecOptions, PodLogOptions, …).

/** A boolean flag: false when absent, "0" or "false" (any case), else true. */
export function queryFlag(query: URLSearchParams, name: string): boolean {
  const v = query.get(name);
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}
