/** Email and domain normalisation: trim and plain ASCII lower-casing, never Unicode case folding. */

/** Trims and lower-cases A–Z only: Unicode folding would map look-alikes (`ADMİN@…`) onto another account. */
export function normalizeEmail(raw: string): string {
  return raw.trim().replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}

/** Domains compare the same way as emails. */
export function normalizeDomain(raw: string): string {
  return normalizeEmail(raw);
}
