/// JSON for rsagent's Codable types, without Foundation (whose JSONEncoder brought 4 MB and a
/// thousand protocol conformances into a static binary, and every dynamic cast scans those).
///
/// Output is what scripts and people read: keys sorted, `/` not escaped, and either one line or
/// pretty-printed with two spaces and `"key" : value`, as Foundation's encoder wrote it. Whole
/// doubles print as integers (`1`, not `1.0`).
public enum JSON {
    /// One JSON document for `value`.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        let box = try ValueEncoder.value(value, at: [])
        var out = ""
        write(box, into: &out, pretty: pretty, indent: 0)
        return out
    }

    /// Decodes `T` from JSON text; a malformed document is `DecodingError.dataCorrupted`.
    public static func decode<T: Decodable>(_ type: T.Type, from text: some StringProtocol) throws -> T {
        var parser = Parser(bytes: Array(text.utf8))
        let value = try parser.document()
        return try T(from: ValueDecoder(value: value, codingPath: []))
    }

    /// A parsed or built JSON value. Numbers keep their text, so that no precision is lost on
    /// the way between integer and floating-point types.
    indirect enum Value: Equatable {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([Value])
        case object([String: Value])
    }

    // MARK: writing

    /// Writes what an encoder built, straight from its boxes.
    fileprivate static func write(_ b: ValueEncoder.Box, into out: inout String, pretty: Bool, indent: Int) {
        if let fields = b.fields {
            if fields.isEmpty { out += "{}"; return }
            out += "{"
            for (i, key) in fields.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                if pretty { newline(into: &out, indent: indent + 1) }
                quote(key, into: &out)
                out += pretty ? " : " : ":"
                write(fields[key]!, into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(into: &out, indent: indent) }
            out += "}"
        } else if let items = b.items {
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                if pretty { newline(into: &out, indent: indent + 1) }
                write(item, into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(into: &out, indent: indent) }
            out += "]"
        } else {
            switch b.value ?? .null {
            case .null: out += "null"
            case .bool(let v): out += v ? "true" : "false"
            case .number(let n): out += n
            case .string(let v): quote(v, into: &out)
            case .array, .object: out += "null"  // the encoder builds collections as boxes
            }
        }
    }

    static func newline(into out: inout String, indent: Int) {
        out += "\n"
        for _ in 0..<indent { out += "  " }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        // Most text needs no escape: append it whole.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += s
            out += "\""
            return
        }
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    static func number(_ d: Double) throws -> Value {
        guard d.isFinite else {
            throw EncodingError.invalidValue(d, .init(codingPath: [], debugDescription: "\(d) is not valid JSON"))
        }
        if d == d.rounded() && abs(d) < 1e15 { return .number(String(Int64(d))) }
        return .number(d.description)
    }

    // MARK: parsing

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ why: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: [], debugDescription: "\(why) at byte \(i)"))
        }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 {
                i += 1
            }
        }

        mutating func document() throws -> Value {
            let v = try value(depth: 0)
            skipSpace()
            guard i == bytes.count else { throw fail("unexpected text after the document") }
            return v
        }

        mutating func literal(_ word: String, _ v: Value) throws -> Value {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else {
                throw fail("unexpected word")
            }
            i += w.count
            return v
        }

        mutating func value(depth: Int) throws -> Value {
            guard depth < 64 else { throw fail("nesting too deep") }
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "n"): return try literal("null", .null)
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "["):
                i += 1
                var items: [Value] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw fail("unexpected end in an array") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard bytes[i] == UInt8(ascii: "]") else { throw fail("expected , or ]") }
                    i += 1
                    return .array(items)
                }
            case UInt8(ascii: "{"):
                i += 1
                var fields: [String: Value] = [:]
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let key = try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected :") }
                    i += 1
                    fields[key] = try value(depth: depth + 1)
                    skipSpace()
                    guard i < bytes.count else { throw fail("unexpected end in an object") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard bytes[i] == UInt8(ascii: "}") else { throw fail("expected , or }") }
                    i += 1
                    return .object(fields)
                }
            default:
                let start = i
                while i < bytes.count, "+-.eE0123456789".utf8.contains(bytes[i]) { i += 1 }
                let text = String(decoding: bytes[start..<i], as: UTF8.self)
                guard !text.isEmpty, Double(text) != nil else { throw fail("not a JSON value") }
                return .number(text)
            }
        }

        mutating func string() throws -> String {
            i += 1  // the opening quote
            var out: [UInt8] = []
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                switch b {
                case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard i < bytes.count else { throw fail("unexpected end in a string") }
                    let e = bytes[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        // A surrogate pair: two escapes for one scalar.
                        if (0xD800..<0xDC00).contains(scalar), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"),
                            bytes[i + 1] == UInt8(ascii: "u")
                        {
                            i += 2
                            let low = try hex4()
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        out += Array(String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8)
                    default: out.append(e)  // \" \\ \/
                    }
                default: out.append(b)
                }
            }
            throw fail("unterminated string")
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16)
            else { throw fail("bad \\u escape") }
            i += 4
            return v
        }
    }
}

// MARK: - Encoder

/// Builds a `JSON.Value` from an `Encodable`; containers write into shared boxes.
private final class ValueEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    private var box: Box?

    /// A value being built: a finished value, or an object or array still being filled.
    final class Box {
        var value: JSON.Value?
        var fields: [String: Box]?
        var items: [Box]?
        init(value: JSON.Value? = nil, fields: [String: Box]? = nil, items: [Box]? = nil) {
            self.value = value; self.fields = fields; self.items = items
        }
    }

    init(codingPath: [any CodingKey]) { self.codingPath = codingPath }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if box?.fields == nil { box = Box(fields: [:]) }
        return KeyedEncodingContainer(Keyed<Key>(box: box!, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if box?.items == nil { box = Box(items: []) }
        return Unkeyed(box: box!, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(encoder: self) }

    func set(_ v: JSON.Value) { box = Box(value: v) }

    /// A primitive directly (recognised by its type, without a dynamic cast); anything else
    /// through its own `encode(to:)`.
    static func value<T: Encodable>(_ v: T, at path: [any CodingKey]) throws -> Box {
        if T.self == String.self { return Box(value: .string(unsafeBitCast(v, to: String.self))) }
        if T.self == Int.self { return Box(value: .number(String(unsafeBitCast(v, to: Int.self)))) }
        if T.self == Bool.self { return Box(value: .bool(unsafeBitCast(v, to: Bool.self))) }
        if T.self == Double.self { return Box(value: try JSON.number(unsafeBitCast(v, to: Double.self))) }
        if T.self == Int32.self { return Box(value: .number(String(unsafeBitCast(v, to: Int32.self)))) }
        if T.self == UInt64.self { return Box(value: .number(String(unsafeBitCast(v, to: UInt64.self)))) }
        if T.self == Int64.self { return Box(value: .number(String(unsafeBitCast(v, to: Int64.self)))) }
        if T.self == UInt32.self { return Box(value: .number(String(unsafeBitCast(v, to: UInt32.self)))) }
        switch v {
        case let f as Float: return Box(value: try JSON.number(Double(f)))
        case let n as any BinaryInteger: return Box(value: .number("\(n)"))
        default:
            let e = ValueEncoder(codingPath: path)
            try v.encode(to: e)
            return e.box ?? Box(fields: [:])
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let box: Box
        let codingPath: [any CodingKey]
        mutating func encodeNil(forKey key: Key) throws { box.fields![key.stringValue] = Box(value: .null) }
        // The common primitives straight, so synthesized `encode(to:)` needs no generic call.
        mutating func encode(_ value: String, forKey key: Key) throws {
            box.fields![key.stringValue] = Box(value: .string(value))
        }
        mutating func encode(_ value: Int, forKey key: Key) throws {
            box.fields![key.stringValue] = Box(value: .number(String(value)))
        }
        mutating func encode(_ value: Bool, forKey key: Key) throws {
            box.fields![key.stringValue] = Box(value: .bool(value))
        }
        mutating func encode(_ value: Double, forKey key: Key) throws {
            box.fields![key.stringValue] = Box(value: try JSON.number(value))
        }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            box.fields![key.stringValue] = try ValueEncoder.value(value, at: codingPath + [key])
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
            -> KeyedEncodingContainer<NestedKey>
        {
            let b = Box(fields: [:])
            box.fields![key.stringValue] = b
            return KeyedEncodingContainer(Keyed<NestedKey>(box: b, codingPath: codingPath + [key]))
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let b = Box(items: [])
            box.fields![key.stringValue] = b
            return Unkeyed(box: b, codingPath: codingPath + [key])
        }
        mutating func superEncoder() -> any Encoder { ValueEncoder(codingPath: codingPath) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { ValueEncoder(codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let box: Box
        let codingPath: [any CodingKey]
        var count: Int { box.items!.count }
        mutating func encodeNil() throws { box.items!.append(Box(value: .null)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            box.items!.append(try ValueEncoder.value(value, at: codingPath))
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
            -> KeyedEncodingContainer<NestedKey>
        {
            let b = Box(fields: [:])
            box.items!.append(b)
            return KeyedEncodingContainer(Keyed<NestedKey>(box: b, codingPath: codingPath))
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let b = Box(items: [])
            box.items!.append(b)
            return Unkeyed(box: b, codingPath: codingPath)
        }
        mutating func superEncoder() -> any Encoder { ValueEncoder(codingPath: codingPath) }
    }

    struct Single: SingleValueEncodingContainer {
        let encoder: ValueEncoder
        var codingPath: [any CodingKey] { encoder.codingPath }
        mutating func encodeNil() throws { encoder.set(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            encoder.box = try ValueEncoder.value(value, at: codingPath)
        }
    }
}

// MARK: - Decoder

private struct ValueDecoder: Decoder {
    let value: JSON.Value
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func mismatch(_ expected: String) -> DecodingError {
        .typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "expected \(expected), found \(value)"))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let fields) = value else { throw mismatch("an object") }
        return KeyedDecodingContainer(Keyed<Key>(fields: fields, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch("an array") }
        return Unkeyed(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(decoder: self) }

    /// A primitive directly; anything else through its own `init(from:)`.
    static func decode<T: Decodable>(_ type: T.Type, from v: JSON.Value, at path: [any CodingKey]) throws -> T {
        let d = ValueDecoder(value: v, codingPath: path)
        if type == String.self {
            guard case .string(let s) = v else { throw d.mismatch("a string") }
            return s as! T
        }
        if type == Bool.self {
            guard case .bool(let b) = v else { throw d.mismatch("true or false") }
            return b as! T
        }
        if type == Double.self || type == Float.self {
            guard case .number(let n) = v, let x = Double(n) else { throw d.mismatch("a number") }
            return (type == Float.self ? Float(x) as Any : x as Any) as! T
        }
        if let integer = type as? any FixedWidthInteger.Type {
            guard case .number(let n) = v else { throw d.mismatch("an integer") }
            if let i = Int64(n), let x = integer.init(exactly: i) { return x as! T }
            if let u = UInt64(n), let x = integer.init(exactly: u) { return x as! T }
            if let f = Double(n), let x = integer.init(exactly: f) { return x as! T }
            throw d.mismatch("an integer that fits")
        }
        return try T(from: d)
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let fields: [String: JSON.Value]
        let codingPath: [any CodingKey]
        var allKeys: [Key] { fields.keys.compactMap { Key(stringValue: $0) } }
        func contains(_ key: Key) -> Bool { fields[key.stringValue] != nil }
        func field(_ key: Key) throws -> JSON.Value {
            guard let v = fields[key.stringValue] else {
                throw DecodingError.keyNotFound(
                    key, .init(codingPath: codingPath, debugDescription: "no key \(key.stringValue)"))
            }
            return v
        }
        func decodeNil(forKey key: Key) throws -> Bool { (try field(key)) == .null }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try ValueDecoder.decode(type, from: try field(key), at: codingPath + [key])
        }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try ValueDecoder(value: try field(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try ValueDecoder(value: try field(key), codingPath: codingPath + [key]).unkeyedContainer()
        }
        func superDecoder() throws -> any Decoder { ValueDecoder(value: .object(fields), codingPath: codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder {
            ValueDecoder(value: try field(key), codingPath: codingPath + [key])
        }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSON.Value]
        let codingPath: [any CodingKey]
        var currentIndex = 0
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }
        mutating func next() throws -> JSON.Value {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(
                    Any.self, .init(codingPath: codingPath, debugDescription: "the array has no more items"))
            }
            defer { currentIndex += 1 }
            return items[currentIndex]
        }
        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try ValueDecoder.decode(type, from: try next(), at: codingPath)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try ValueDecoder(value: try next(), codingPath: codingPath).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            try ValueDecoder(value: try next(), codingPath: codingPath).unkeyedContainer()
        }
        mutating func superDecoder() throws -> any Decoder { ValueDecoder(value: try next(), codingPath: codingPath) }
    }

    struct Single: SingleValueDecodingContainer {
        let decoder: ValueDecoder
        var codingPath: [any CodingKey] { decoder.codingPath }
        func decodeNil() -> Bool { decoder.value == .null }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try ValueDecoder.decode(type, from: decoder.value, at: codingPath)
        }
    }
}
