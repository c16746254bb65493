// Ambient declarations for runtime APIs newer than the bundled TypeScript lib.

interface Uint8ArrayConstructor {
  fromBase64(
    input: string,
    options?: { alphabet?: "base64" | "base64url"; lastChunkHandling?: "loose" | "strict" | "stop-before-partial" },
  ): Uint8Array<ArrayBuffer>;
}

interface Uint8Array {
  toBase64(options?: { alphabet?: "base64" | "base64url"; omitPadding?: boolean }): string;
}
