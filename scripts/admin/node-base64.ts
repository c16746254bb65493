/** Node 22 lacks `Uint8Array#toBase64` / `Uint8Array.fromBase64` that the gateway's code (run in workerd) uses; Buffer stands in. */

if (typeof Uint8Array.prototype.toBase64 !== "function") {
  Uint8Array.prototype.toBase64 = function (
    this: Uint8Array,
    options?: { alphabet?: "base64" | "base64url"; omitPadding?: boolean },
  ) {
    let encoded = Buffer.from(this.buffer, this.byteOffset, this.byteLength).toString("base64");
    if (options?.alphabet === "base64url") encoded = encoded.replaceAll("+", "-").replaceAll("/", "_");
    return options?.omitPadding ? encoded.replace(/=+$/, "") : encoded;
  };
}

if (typeof Uint8Array.fromBase64 !== "function") {
  Uint8Array.fromBase64 = (input: string, options?: { alphabet?: "base64" | "base64url" }) =>
    new Uint8Array(Buffer.from(input, options?.alphabet === "base64url" ? "base64url" : "base64"));
}
