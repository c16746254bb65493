/** Path forms an origin may resolve to a dot-segment or separator: 400 `ambiguous_path` (docs/forwarding.md). */
import { GatewayError } from "../gateway-error";

const AMBIGUOUS_FORMS: readonly (readonly [RegExp, string])[] = [
  [/\/(?:\.|%2e)+(?:;|%3b)/i, "a dot segment with ;-parameters (Tomcat and Spring read ..; as ..)"],
  [/\/(?:\.|%2e)+(?:%20)*(?=\/|$)/i, "a segment of only dots and spaces (Windows and IIS trim it to . or ..)"],
  [
    /%25(?:25)*(?:2e|2f|5c|3b|00)/i,
    "a double-encoded dot, slash, backslash, semicolon or NUL (%252e, %252f, %255c, …)",
  ],
  [/%(?:[01][0-9a-f]|7f)/i, "a percent-encoded control character (NUL, CR, LF, …)"],
  [/%(?![0-9a-f]{2})/i, "a % that is not a percent-encoded byte (IIS reads %u002e as .)"],
  [/%c[01]|%e0%[89][0-9a-f]|%f0%8[0-9a-f]/i, "an overlong UTF-8 sequence (%c0%ae is . to lenient decoders)"],
  [
    /%ef%bc%8[ef]|%ef%bc%bc|%ef%b9%92|%ef%b9%a8|%e2%80%a[45]/i,
    "a full-width or compatibility dot, slash or backslash (NFKC turns it into . / or \\)",
  ],
];

/** Throws 400 `ambiguous_path` for a path (still percent-encoded, no query) in one of the forms above. */
export function checkPathForm(path: string): void {
  if (!path.includes("%") && !path.includes(";") && !path.includes("/.")) return;
  for (const [pattern, what] of AMBIGUOUS_FORMS) {
    if (pattern.test(path))
      throw new GatewayError("ambiguous_path", `The request path contains ${what}; send the path it stands for.`);
  }
}
