/** Email and domain normalisation: trim and plain ASCII lower-casing, never Unicode case folding. */

/**
 * Trims and lower-cases A–Z only. Unicode-aware folding (`toLowerCase`, NFKC) would map look-alike
 * addresses such as `ADMİN@…` onto another account's address, so everything else stays as written.
 */
export function normalizeEmail(raw: string): string {
  return raw.trim().replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}

/** Domains compare the same way as emails. */
export function normalizeDomain(raw: string): string {
  return normalizeEmail(raw);
}
