/**
 * Turning what a caller sent (base64 DER, leaf first) into parsed certificates, with limits: the input comes from
 * an SMTP client, so its size is bounded and a parse error is a reason, never an exception.
 */
import { parseCertificateCached } from "./certificate-memo.ts";
import { x509, type X509Certificate } from "./x509.ts";

export interface ChainLimits {
  /** Most certificates accepted in one presented chain (leaf included). */
  maxChainLength: number;
  /** Largest single certificate, in bytes of DER. */
  maxCertificateBytes: number;
}

export const DEFAULT_CHAIN_LIMITS: ChainLimits = { maxChainLength: 8, maxCertificateBytes: 16 * 1024 };

export interface ParsedCertificate {
  certificate: X509Certificate;
  der: Uint8Array;
}

export type ParsedChain = { ok: true; chain: ParsedCertificate[] } | { ok: false; detail: string };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function parseChain(encoded: readonly string[], limits: ChainLimits): ParsedChain {
  if (encoded.length === 0) return { ok: false, detail: "empty certificate chain" };
  if (encoded.length > limits.maxChainLength)
    return { ok: false, detail: `chain of ${encoded.length} certificates; at most ${limits.maxChainLength} accepted` };
  const chain: ParsedCertificate[] = [];
  for (const [index, text] of encoded.entries()) {
    // base64 is 4/3 of the bytes: reject oversized input before decoding it.
    if (text.length > Math.ceil(limits.maxCertificateBytes / 3) * 4)
      return { ok: false, detail: `certificate ${index} is larger than ${limits.maxCertificateBytes} bytes` };
    if (!BASE64.test(text) || text.length % 4 !== 0) return { ok: false, detail: `certificate ${index} is not base64` };
    const der = Uint8Array.from(Buffer.from(text, "base64"));
    try {
      chain.push({ certificate: parseCertificateCached(text, () => der), der });
    } catch (error) {
      return {
        ok: false,
        detail: `certificate ${index} is not a DER X.509 certificate (${(error as Error).message.split("\n")[0]})`,
      };
    }
  }
  return { ok: true, chain };
}

/** Parses a PEM bundle of trust anchors; throws with a message naming the problem (used at start-up). */
export function parseTrustAnchors(pem: string, source: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${source}: no PEM certificate found`);
  return blocks.map((block, index) => {
    try {
      return new x509.X509Certificate(block);
    } catch (error) {
      throw new Error(`${source}: certificate ${index} cannot be parsed (${(error as Error).message})`, {
        cause: error,
      });
    }
  });
}
