/**
 * The client's certificate chain as the API wants it: base64 DER, leaf first. Node gives the peer certificate
 * with `.raw` (DER) and `.issuerCertificate` links; the last one links to itself.
 */
import type { TLSSocket, DetailedPeerCertificate } from "node:tls";

const MAX_CHAIN = 16;

export function peerChain(socket: TLSSocket): string[] | null {
  // Without a client certificate Node returns an empty object.
  const leaf = socket.getPeerCertificate(true) as Partial<DetailedPeerCertificate> | null;
  if (!leaf?.raw) return null;
  const chain: string[] = [];
  const seen = new Set<string>();
  let current = leaf as DetailedPeerCertificate | undefined;
  while (current?.raw && chain.length < MAX_CHAIN) {
    const der = current.raw.toString("base64");
    if (seen.has(der)) break;
    seen.add(der);
    chain.push(der);
    current = current.issuerCertificate;
  }
  return chain;
}
