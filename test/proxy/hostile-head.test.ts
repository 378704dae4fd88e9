// refuseRequestHead from a table: which request heads are refused before anything is forwarded, and with which code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refuseRequestHead, MAX_REQUEST_HEADERS, MAX_REQUEST_HEADER_BYTES } from '../../src/proxy/http/headers.js';

const many = (n: number) => Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']).flat();
const h2 = (extra: string[] = [], scheme = 'http') => [':method', 'GET', ':scheme', scheme, ':path', '/', ':authority', 'b', ...extra];

// [what, rawHeaders, url, h2, expected code or undefined]
const table: [string, string[], string, boolean, string | undefined][] = [
  ['plain GET', ['Host', 'b'], '/', false, undefined],
  ['single chunked (any case, OWS)', ['Host', 'b', 'Transfer-Encoding', ' Chunked '], '/', false, undefined],
  ['gzip, chunked', ['Host', 'b', 'Transfer-Encoding', 'gzip, chunked'], '/', false, 'bad_request'],
  ['chunked twice', ['Host', 'b', 'Transfer-Encoding', 'chunked', 'transfer-encoding', 'chunked'], '/', false, 'bad_request'],
  ['CL and TE', ['Host', 'b', 'Content-Length', '3', 'Transfer-Encoding', 'chunked'], '/', false, 'bad_request'],
  ['NUL in a value', ['Host', 'b', 'x-a', 'a\0b'], '/', false, 'bad_request'],
  ['CR in a value', ['Host', 'b', 'x-a', 'a\rb'], '/', false, 'bad_request'],
  ['LF in a value', ['Host', 'b', 'x-a', 'a\nb'], '/', false, 'bad_request'],
  ['space in a name', ['Host', 'b', 'x a', 'v'], '/', false, 'bad_request'],
  ['http absolute-form', ['Host', 'b'], 'http://b/x', false, undefined],
  ['HTTPS absolute-form', ['Host', 'b'], 'HTTPS://b/x', false, undefined],
  ['ftp absolute-form', ['Host', 'b'], 'ftp://b/x', false, 'bad_request'],
  [`${MAX_REQUEST_HEADERS} headers`, ['Host', 'b', ...many(MAX_REQUEST_HEADERS - 1)], '/', false, undefined],
  [`${MAX_REQUEST_HEADERS + 1} headers`, ['Host', 'b', ...many(MAX_REQUEST_HEADERS)], '/', false, 'headers_too_large'],
  ['headers just under the byte limit', ['Host', 'b', 'x-big', 'a'.repeat(MAX_REQUEST_HEADER_BYTES - 20)], '/', false, undefined],
  ['headers over the byte limit', ['Host', 'b', 'x-big', 'a'.repeat(MAX_REQUEST_HEADER_BYTES)], '/', false, 'headers_too_large'],
  ['h2 plain', h2(), '/', true, undefined],
  ['h2 pseudo headers do not count toward the limit', h2(many(MAX_REQUEST_HEADERS)), '/', true, undefined],
  ['h2 uppercase name', h2(['X-Up', 'v']), '/', true, 'bad_request'],
  ['h2 transfer-encoding', h2(['transfer-encoding', 'chunked']), '/', true, 'bad_request'],
  ['h2 ftp :scheme', h2([], 'ftp'), '/', true, 'bad_request'],
  ['h2 101 headers', h2(many(MAX_REQUEST_HEADERS + 1)), '/', true, 'headers_too_large'],
];

for (const [what, raw, url, isH2, code] of table) {
  test(`refuseRequestHead: ${what} -> ${code ?? 'accepted'}`, () => {
    assert.equal(refuseRequestHead(raw, url, isH2)?.code, code);
  });
}
