// Proves the CRL server: DER with validators, 304 to a matching If-None-Match or If-Modified-Since, 404, injected
// 500s, replaced and computed bodies, and a real CRL at a leaf's distribution point.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateClientPki } from "./client-pki/index.ts";
import { serveCrls, type CrlServer } from "./crl-server.ts";

describe("CRL server", () => {
  let server: CrlServer;
  const body1 = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]);
  const body2 = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x02]);
  let dynamic = body1;

  beforeAll(async () => {
    server = await serveCrls({ "/intermediate.crl": body1, "/dynamic.crl": () => dynamic });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("serves DER with content type, ETag and Last-Modified, and 304 to a matching If-None-Match", async () => {
    expect(server.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server.baseUrl}/intermediate.crl`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/pkix-crl");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(body1);
    const etag = res.headers.get("etag") ?? "";
    const lastModified = res.headers.get("last-modified") ?? "";
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(Date.parse(lastModified)).not.toBeNaN();

    const again = await fetch(`${server.baseUrl}/intermediate.crl`, { headers: { "If-None-Match": etag } });
    expect(again.status).toBe(304);
    const since = await fetch(`${server.baseUrl}/intermediate.crl`, { headers: { "If-Modified-Since": lastModified } });
    expect(since.status).toBe(304);
    const other = await fetch(`${server.baseUrl}/intermediate.crl`, { headers: { "If-None-Match": '"nope"' } });
    expect(other.status).toBe(200);
    await other.arrayBuffer();

    expect(server.hits("/intermediate.crl").map((r) => [r.status, r.ifNoneMatch, r.ifModifiedSince])).toEqual([
      [200, undefined, undefined],
      [304, etag, undefined],
      [304, undefined, lastModified],
      [200, '"nope"', undefined],
    ]);
  });

  it("404 for unknown paths, 500 while failing, set() replaces the body and its ETag", async () => {
    expect((await fetch(`${server.baseUrl}/nope.crl`)).status).toBe(404);
    server.fail("/intermediate.crl", true);
    expect((await fetch(`${server.baseUrl}/intermediate.crl`)).status).toBe(500);
    server.fail("/intermediate.crl", false);
    const before = (await fetch(`${server.baseUrl}/intermediate.crl`)).headers.get("etag") ?? "";
    server.set("/intermediate.crl", body2);
    const res = await fetch(`${server.baseUrl}/intermediate.crl`, { headers: { "If-None-Match": before } });
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(body2);
    expect(res.headers.get("etag")).not.toBe(before);
  });

  it("function bodies are read at each request", async () => {
    const first = await fetch(`${server.baseUrl}/dynamic.crl`);
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(body1);
    dynamic = body2;
    const second = await fetch(`${server.baseUrl}/dynamic.crl`, {
      headers: { "If-None-Match": first.headers.get("etag") ?? "" },
    });
    expect(second.status).toBe(200);
    expect(new Uint8Array(await second.arrayBuffer())).toEqual(body2);
  });

  it("serves a real CRL at a leaf's distribution point", async () => {
    const crls = await serveCrls();
    try {
      const pki = await generateClientPki({ crlBaseUrl: crls.baseUrl, fresh: true });
      crls.set("/intermediate.crl", pki.crls.intermediateCurrent.der);
      const cdp = pki.leaves.revoked.certificate.getExtension(x509.CRLDistributionPointsExtension);
      const url = cdp?.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier ?? "";
      const crl = new x509.X509Crl(await (await fetch(url)).arrayBuffer());
      expect(crl.findRevoked(pki.leaves.revoked.certificate)).not.toBeNull();
      expect(await crl.verify({ publicKey: pki.intermediate.certificate.publicKey })).toBe(true);
    } finally {
      await crls.close();
    }
  });
});
