/**
 * HPACK (RFC 7541), HTTP/2's header compression, for lib/http2.ts: a decoder for what a server
 * sends (static and dynamic tables, Huffman-coded strings) and an encoder that writes every
 * header as a plain literal, which needs neither (servers must accept it). Pure: no I/O.
 *
 * @module
 */

/** Header fields in their order, as [name, value]. */
export type HeaderList = [string, string][];

/** RFC 7541 Appendix A: the static table, entries 1-61 (names, and the values some have). */
const STATIC: HeaderList = (
  ":authority :method=GET :method=POST :path=/ :path=/index.html :scheme=http :scheme=https " +
  ":status=200 :status=204 :status=206 :status=304 :status=400 :status=404 :status=500 " +
  "accept-charset accept-encoding=gzip,deflate accept-language accept-ranges accept " +
  "access-control-allow-origin age allow authorization cache-control content-disposition " +
  "content-encoding content-language content-length content-location content-range " +
  "content-type cookie date etag expect expires from host if-match if-modified-since " +
  "if-none-match if-range if-unmodified-since last-modified link location max-forwards " +
  "proxy-authenticate proxy-authorization range referer refresh retry-after server set-cookie " +
  "strict-transport-security transfer-encoding user-agent vary via www-authenticate"
).split(" ").map((e) => {
  const [name, value = ""] = e.split("=");
  return [name, value.replace(",", ", ")]; // (the one value with a space)
});

/**
 * RFC 7541 Appendix B: the Huffman code's length in bits for each symbol 0-256 (256 is EOS),
 * one character each ("5" = 5 … "U" = 30, base 36). The code is canonical: ordered by length,
 * then by symbol, each code is the one before plus one (shifted to its length), so these
 * lengths are the whole table.
 */
const HUFFMAN_LENGTHS =
  "DNSSSSSSSOUSSUSSSSSSSSUSSSSSSSSS6AACD68BAA8B8666555666666678F6CAD6777777777777" +
  "7777777777878DJDE6F56565666577666567655677777FBEDSKMKKMMMNMNNNNNONOOMNONNNNLMNMNNOMLKMMNN" +
  "LNMMOLMNNLLMLNMNNKMMMNMMNQQKJMNMPQQQRRQOPJLQRRQROLLQQSRRRKOKLMLLNMMPPOOQNQRQQRRRRRSRRRRRQU";

/** Canonical decoding tables: per length, the first code, how many, and where they start. */
const HUFFMAN = (() => {
  const lengths = [...HUFFMAN_LENGTHS].map((c) => parseInt(c, 36));
  const symbols = lengths.map((_, s) => s).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const first: number[] = [], count: number[] = [], start: number[] = [];
  let code = 0, at = 0;
  for (let len = 1; len <= 30; len++) {
    const n = lengths.filter((l) => l === len).length;
    first[len] = code, count[len] = n, start[len] = at;
    at += n;
    code = (code + n) * 2;
  }
  return { symbols, first, count, start };
})();

/** Decodes a Huffman-coded string (RFC 7541 §5.2). */
export function huffmanDecode(bytes: Uint8Array): Uint8Array {
  const { symbols, first, count, start } = HUFFMAN;
  const out: number[] = [];
  let code = 0, len = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const i = code - first[len];
      if (i >= 0 && i < count[len]) {
        const sym = symbols[start[len] + i];
        if (sym === 256) throw new Error("HPACK: EOS in a Huffman-coded string");
        out.push(sym);
        code = 0, len = 0;
      } else if (len === 30) {
        throw new Error("HPACK: bad Huffman code");
      }
    }
  }
  // The padding is the most significant bits of EOS (all ones), shorter than a byte.
  if (len > 7 || code !== 2 ** len - 1) throw new Error("HPACK: bad Huffman padding");
  return new Uint8Array(out);
}

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();
/** What an entry of the dynamic table counts beyond its name and value (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

/** A decoder with its dynamic table: one per connection, fed every header block in order. */
export class HpackDecoder {
  #table: { name: string; value: string; size: number }[] = [];
  #size = 0;
  #max: number;
  #limit: number;

  /** `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE this side announced (4096 unless set). */
  constructor(maxTableSize = 4096) {
    this.#max = this.#limit = maxTableSize;
  }

  /** Decodes one whole header block (HEADERS plus its CONTINUATIONs). */
  decode(block: Uint8Array): HeaderList {
    const out: HeaderList = [];
    let at = 0;
    const int = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let n = block[at++] & mask;
      if (n < mask) return n;
      for (let shift = 0;; shift += 7) {
        if (at >= block.length || shift > 28) throw new Error("HPACK: bad integer");
        const b = block[at++];
        n += (b & 0x7f) * 2 ** shift;
        if (!(b & 0x80)) return n;
      }
    };
    const str = (): string => {
      const huffman = (block[at] & 0x80) !== 0;
      const len = int(7);
      if (at + len > block.length) throw new Error("HPACK: string past the block's end");
      const raw = block.subarray(at, at += len);
      return utf8.decode(huffman ? huffmanDecode(raw) : raw);
    };
    while (at < block.length) {
      const b = block[at];
      if (b & 0x80) {
        const [name, value] = this.#entry(int(7));
        out.push([name, value]);
      } else if ((b & 0xe0) === 0x20) {
        const size = int(5);
        if (size > this.#limit) throw new Error("HPACK: table size above the announced limit");
        this.#max = size;
        this.#evict(0);
      } else {
        // 01: with incremental indexing (6-bit index); 0000 and 0001: without (4-bit index).
        const indexing = (b & 0xc0) === 0x40;
        const index = int(indexing ? 6 : 4);
        const name = index ? this.#entry(index)[0] : str();
        const value = str();
        out.push([name, value]);
        if (indexing) this.#add(name, value);
      }
    }
    return out;
  }

  #entry(index: number): [string, string] {
    if (index >= 1 && index <= STATIC.length) return STATIC[index - 1];
    const e = this.#table[index - STATIC.length - 1];
    if (!e) throw new Error(`HPACK: no table entry ${index}`);
    return [e.name, e.value];
  }

  #add(name: string, value: string): void {
    const size = utf8Encoder.encode(name).length + utf8Encoder.encode(value).length +
      ENTRY_OVERHEAD;
    this.#evict(size);
    // An entry larger than the whole table empties it and is not kept (RFC 7541 §4.4).
    if (size > this.#max) return;
    this.#table.unshift({ name, value, size });
    this.#size += size;
  }

  /** Drops the oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    while (this.#table.length && this.#size + room > this.#max) {
      this.#size -= this.#table.pop()!.size;
    }
  }
}

/**
 * Encodes header fields as literals without indexing and without Huffman coding (RFC 7541
 * §6.2.2): larger than need be, but our requests carry a handful of short headers.
 */
export function encodeHeaders(headers: HeaderList): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of headers) {
    out.push(0);
    for (const s of [name, value]) {
      const bytes = utf8Encoder.encode(s);
      // The length: a 7-bit prefix (its top bit, H, 0: no Huffman), then 7 bits a byte.
      let n = bytes.length;
      if (n < 0x7f) out.push(n);
      else {
        out.push(0x7f);
        for (n -= 0x7f; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n % 0x80) | 0x80);
        out.push(n);
      }
      for (const b of bytes) out.push(b);
    }
  }
  return new Uint8Array(out);
}
