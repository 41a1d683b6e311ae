/**
 * The one place that imports @peculiar/x509. `reflect-metadata` must be loaded before it (its ASN.1 schema
 * decorators need it at import time), in every bundle; importing the library from here guarantees the order.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
export type X509Certificate = x509.X509Certificate;
export type X509Crl = x509.X509Crl;
