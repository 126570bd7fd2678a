/**
 * Orders strings by their UTF-16 code units, the same on every machine. `localeCompare` and
 * `Intl.Collator()` follow the locale of the process (LANG, LC_ALL): under et_EE "z" sorts
 * between "s" and "t", under da_DK "aa" after "z". Everything that decides the order of output
 * (the writers, the checks, which advisory id heads a finding, the fix a policy names) or of work
 * (files imported) uses this one comparison, so the same input gives the same bytes wherever it
 * runs.
 */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
