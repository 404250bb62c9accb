/**
 * A small protobuf (proto3) codec for the descriptors of proto.ts: the scalar types, enums,
 * nested messages, repeated fields and string maps that containerd's API uses there. Messages
 * are plain objects with the descriptor's field names; decoding fills in every field with its
 * default (as protobufjs's `toObject({ defaults: true, longs: Number, enums: String })`), with
 * `null` for an absent message. Unknown fields are skipped.
 *
 * @module
 */

/** A field in protobufjs's JSON shape. */
interface FieldJson {
  type: string;
  id: number;
  rule?: "repeated";
  /** A map field: the key's type (the value's is `type`). */
  keyType?: string;
}

/** A namespace, message, enum or service in protobufjs's JSON shape. */
export interface Namespace {
  nested?: Record<string, Namespace>;
  fields?: Record<string, FieldJson>;
  values?: Record<string, number>;
  methods?: Record<string, { requestType: string; responseType: string }>;
}

type Message = Record<string, unknown>;

interface Field {
  name: string;
  id: number;
  /** A scalar type's name, or the full name of an enum or message. */
  type: string;
  kind: "scalar" | "enum" | "message";
  repeated: boolean;
  map: boolean;
}

/** The compiled descriptors. */
export interface Codec {
  /** The full names of a method's request and response messages. */
  method(service: string, name: string): { request: string; response: string };
  encode(type: string, message: Message): Uint8Array;
  decode(type: string, bytes: Uint8Array): Message;
}

const VARINT = 0;
const LEN = 2;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Index the descriptors by full name and resolve every field's type. */
export function compile(root: Namespace): Codec {
  const nodes = new Map<string, Namespace>();
  const walk = (ns: Namespace, prefix: string) => {
    for (const [name, node] of Object.entries(ns.nested ?? {})) {
      const full = prefix ? `${prefix}.${name}` : name;
      nodes.set(full, node);
      walk(node, full);
    }
  };
  walk(root, "");
  /** A type named in scope `scope`: as protobuf does, the innermost enclosing match. */
  const resolve = (name: string, scope: string): string => {
    for (let s = scope;; s = s.slice(0, Math.max(0, s.lastIndexOf(".")))) {
      const full = s ? `${s}.${name}` : name;
      if (nodes.has(full)) return full;
      if (!s) throw new Error(`proto: unknown type ${name} (in ${scope})`);
    }
  };
  const messages = new Map<string, { fields: Field[]; byId: Map<number, Field> }>();
  const message = (type: string) => {
    let m = messages.get(type);
    if (m) return m;
    const node = nodes.get(type);
    if (!node?.fields) throw new Error(`proto: ${type} is no message`);
    const fields = Object.entries(node.fields).map(([name, f]): Field => {
      const scalar = SCALARS.has(f.type);
      // (The message's own nested types come first.)
      const full = scalar ? f.type : resolve(f.type, type);
      return {
        name,
        id: f.id,
        type: full,
        kind: scalar ? "scalar" : nodes.get(full)!.values ? "enum" : "message",
        repeated: f.rule === "repeated",
        map: f.keyType !== undefined,
      };
    });
    m = { fields, byId: new Map(fields.map((f) => [f.id, f])) };
    messages.set(type, m);
    return m;
  };
  const values = (type: string) => nodes.get(type)!.values!;

  function encode(type: string, msg: Message): Uint8Array {
    const w = new Writer();
    for (const f of message(type).fields) {
      const v = msg[f.name];
      if (v === undefined || v === null) continue;
      if (f.map) {
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
          const entry = new Writer();
          entry.tag(1, LEN).bytes(enc.encode(k));
          entry.tag(2, LEN).bytes(enc.encode(String(x)));
          w.tag(f.id, LEN).bytes(entry.finish());
        }
      } else if (f.repeated) { for (const x of v as unknown[]) one(w, f, x); }
      else one(w, f, v);
    }
    return w.finish();
  }

  function one(w: Writer, f: Field, v: unknown): void {
    if (f.kind === "message") w.tag(f.id, LEN).bytes(encode(f.type, v as Message));
    else if (f.kind === "enum") {
      w.tag(f.id, VARINT).varint(
        BigInt(typeof v === "string" ? values(f.type)[v] ?? 0 : Number(v)),
      );
    } else if (f.type === "string") w.tag(f.id, LEN).bytes(enc.encode(String(v)));
    else if (f.type === "bytes") w.tag(f.id, LEN).bytes(v as Uint8Array);
    else if (f.type === "bool") w.tag(f.id, VARINT).varint(v ? 1n : 0n);
    else w.tag(f.id, VARINT).varint(BigInt(v as number));
  }

  function decode(type: string, bytes: Uint8Array): Message {
    const m = message(type);
    const out: Message = {};
    for (const f of m.fields) out[f.name] = defaultOf(f);
    const r = new Reader(bytes);
    while (!r.done()) {
      const key = Number(r.varint());
      const f = m.byId.get(key >>> 3);
      const wire = key & 7;
      if (!f || (wire !== LEN && (f.kind === "message" || f.map))) {
        r.skip(wire);
        continue;
      }
      if (f.map) {
        const entry = new Reader(r.bytes());
        let k = "";
        let v = "";
        while (!entry.done()) {
          const ek = Number(entry.varint());
          if ((ek & 7) !== LEN) entry.skip(ek & 7);
          else if (ek >>> 3 === 1) k = dec.decode(entry.bytes());
          else if (ek >>> 3 === 2) v = dec.decode(entry.bytes());
          else entry.skip(LEN);
        }
        (out[f.name] as Record<string, string>)[k] = v;
      } else if (f.repeated && wire === LEN && f.kind !== "message" && !LENGTHY.has(f.type)) {
        const packed = new Reader(r.bytes()); // packed numbers
        while (!packed.done()) (out[f.name] as unknown[]).push(scalar(f, packed, VARINT));
      } else {
        const v = f.kind === "message" ? decode(f.type, r.bytes()) : scalar(f, r, wire);
        if (f.repeated) (out[f.name] as unknown[]).push(v);
        else out[f.name] = v;
      }
    }
    return out;
  }

  function scalar(f: Field, r: Reader, wire: number): unknown {
    if (f.type === "string") return dec.decode(r.bytes());
    if (f.type === "bytes") return r.bytes().slice();
    if (wire !== VARINT) {
      r.skip(wire);
      return defaultOf({ ...f, repeated: false });
    }
    const n = r.varint();
    if (f.kind === "enum") {
      const k = Number(BigInt.asIntN(32, n));
      return Object.entries(values(f.type)).find(([, x]) => x === k)?.[0] ?? k;
    }
    if (f.type === "bool") return n !== 0n;
    if (f.type === "int32") return Number(BigInt.asIntN(32, n));
    if (f.type === "uint32") return Number(BigInt.asUintN(32, n));
    if (f.type === "int64") return Number(BigInt.asIntN(64, n));
    return Number(BigInt.asUintN(64, n));
  }

  function defaultOf(f: Field): unknown {
    if (f.map) return {};
    if (f.repeated) return [];
    if (f.kind === "message") return null;
    if (f.kind === "enum") return Object.keys(values(f.type))[0];
    if (f.type === "string") return "";
    if (f.type === "bytes") return new Uint8Array(0);
    if (f.type === "bool") return false;
    return 0;
  }

  return {
    method(service, name) {
      const m = nodes.get(service)?.methods?.[name];
      if (!m) throw new Error(`proto: no method ${service}.${name}`);
      return {
        request: resolve(m.requestType, service),
        response: resolve(m.responseType, service),
      };
    },
    encode,
    decode,
  };
}

const SCALARS = new Set(["string", "bytes", "bool", "int32", "uint32", "int64", "uint64"]);
/** Scalars that are length-delimited, never packed. */
const LENGTHY = new Set(["string", "bytes"]);

/** Bytes out: parts are kept as they are (a large `bytes` field is not copied until finish). */
class Writer {
  #parts: Uint8Array[] = [];
  #size = 0;

  #push(p: Uint8Array): this {
    this.#parts.push(p);
    this.#size += p.length;
    return this;
  }

  tag(id: number, wire: number): this {
    return this.varint(BigInt(id) << 3n | BigInt(wire));
  }

  /** A varint; negative numbers as their 64-bit two's complement (ten bytes). */
  varint(v: bigint): this {
    let x = BigInt.asUintN(64, v);
    const out: number[] = [];
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    return this.#push(Uint8Array.from(out));
  }

  bytes(b: Uint8Array): this {
    return this.varint(BigInt(b.length)).#push(b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Bytes in. */
class Reader {
  #pos = 0;
  constructor(private buf: Uint8Array) {}

  done(): boolean {
    return this.#pos >= this.buf.length;
  }

  varint(): bigint {
    let v = 0n;
    for (let shift = 0n;; shift += 7n) {
      if (this.#pos >= this.buf.length) throw new Error("proto: truncated varint");
      const b = this.buf[this.#pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  }

  bytes(): Uint8Array {
    const n = Number(this.varint());
    if (this.#pos + n > this.buf.length) throw new Error("proto: truncated field");
    const b = this.buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === LEN) this.bytes();
    else if (wire === 1) this.#pos += 8;
    else if (wire === 5) this.#pos += 4;
    else throw new Error(`proto: wire type ${wire}`);
  }
}
