// What a TLS listener answers when a connection's first byte is not a handshake record: a fatal
// alert, so that a plain client learns at once that it reached TLS (docs/tls.md). Node's and Bun's
// TLS listeners look at the first byte themselves before any handshake starts.

/** A fatal TLS alert, unexpected_message, in a TLS 1.0 record as a first record goes. */
export const PLAIN_TEXT_ALERT: Uint8Array = new Uint8Array([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x0a]);

/** The content type of a handshake record: a ClientHello begins with it. */
export const TLS_HANDSHAKE_RECORD = 0x16;
