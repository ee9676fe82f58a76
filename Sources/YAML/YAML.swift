internal import CYAML

#if canImport(Glibc)
    import Glibc
#endif

/// A position in the YAML text, 1-based, as editors count.
public struct Mark: Hashable, Sendable {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
}

/// One node of a YAML document, with where it starts. Scalars keep their text and style (a
/// quoted empty string is not YAML's null); mappings keep their keys in order, repeats
/// included, so that the caller can point at the second of two equal keys.
public indirect enum Node: Sendable {
    case scalar(Scalar)
    case sequence([Node], Mark)
    case mapping([(key: Node, value: Node)], Mark)

    public struct Scalar: Sendable {
        public enum Style: Sendable { case plain, singleQuoted, doubleQuoted, literal, folded }
        public var string: String
        public var style: Style
        public var mark: Mark
    }

    public var mark: Mark {
        switch self {
        case .scalar(let s): s.mark
        case .sequence(_, let m), .mapping(_, let m): m
        }
    }

    /// The text of a scalar, nil for a collection.
    public var string: String? {
        if case .scalar(let s) = self { return s.string }
        return nil
    }
}

/// libyaml's refusal: what it was reading, the problem, and where.
public struct YAMLError: Error, Sendable, CustomStringConvertible {
    public var problem: String
    public var context: String?
    public var mark: Mark
    public var description: String { (context.map { "\($0) " } ?? "") + problem }
}

/// Composes the first document of `text` into a `Node` tree with libyaml's event parser
/// (`yaml_parser_parse`). Anchors and aliases are resolved. nil for an empty document.
public func compose(_ text: String) throws(YAMLError) -> Node? {
    var parser = yaml_parser_t()
    guard yaml_parser_initialize(&parser) == 1 else {
        throw YAMLError(
            problem: "libyaml could not start (out of memory)", context: nil, mark: Mark(line: 1, column: 1))
    }
    defer { yaml_parser_delete(&parser) }
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBufferPointer { (buf) throws(YAMLError) -> Node? in
        yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
        var builder = Builder()
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else { throw Builder.error(parser) }
            defer { yaml_event_delete(&event) }
            if try builder.take(event) { break }
        }
        return builder.document
    }
}

/// Turns the event stream into nodes: a stack of open collections. Each open collection is a
/// class instance filled in place (an enum payload popped, appended to and pushed back would
/// copy its array on every node: quadratic for a 10,000-VIP profile).
private struct Builder {
    final class Open {
        let isMapping: Bool
        let mark: Mark
        let anchor: String?
        var items: [Node] = []
        var pairs: [(key: Node, value: Node)] = []
        var pendingKey: Node?
        init(isMapping: Bool, mark: Mark, anchor: String?) {
            self.isMapping = isMapping; self.mark = mark; self.anchor = anchor
        }
    }
    var stack: [Open] = []
    var anchors: [String: Node] = [:]
    var document: Node?
    var documents = 0

    static func mark(_ m: yaml_mark_t) -> Mark { Mark(line: m.line + 1, column: m.column + 1) }

    static func string(_ p: UnsafeMutablePointer<yaml_char_t>?, length: Int? = nil) -> String? {
        guard let p else { return nil }
        let n = length ?? strlen(UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    static func error(_ parser: yaml_parser_t) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unreadable input"
        let context = parser.context.map { String(cString: $0) }
        return YAMLError(problem: problem, context: context, mark: mark(parser.problem_mark))
    }

    /// Adds a finished node to what is open; at the top it is the document.
    mutating func add(_ node: Node, anchor: String?) {
        if let anchor { anchors[anchor] = node }
        guard let top = stack.last else {
            document = node
            return
        }
        if !top.isMapping {
            top.items.append(node)
        } else if let key = top.pendingKey {
            top.pairs.append((key, node))
            top.pendingKey = nil
        } else {
            top.pendingKey = node
        }
    }

    /// Takes one event; true at the end of the stream.
    mutating func take(_ e: yaml_event_t) throws(YAMLError) -> Bool {
        let at = Self.mark(e.start_mark)
        switch e.type {
        case YAML_STREAM_END_EVENT:
            return true
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 {
                throw YAMLError(
                    problem: "a second document (`---`) here; a profile is one document", context: nil, mark: at)
            }
        case YAML_SCALAR_EVENT:
            let s = e.data.scalar
            let style: Node.Scalar.Style =
                switch s.style {
                case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
                case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
                case YAML_LITERAL_SCALAR_STYLE: .literal
                case YAML_FOLDED_SCALAR_STYLE: .folded
                default: .plain
                }
            let text = Self.string(s.value, length: s.length) ?? ""
            add(.scalar(Node.Scalar(string: text, style: style, mark: at)), anchor: Self.string(s.anchor))
        case YAML_ALIAS_EVENT:
            let name = Self.string(e.data.alias.anchor) ?? ""
            guard let node = anchors[name] else {
                throw YAMLError(problem: "alias *\(name) names no anchor (&\(name)) before it", context: nil, mark: at)
            }
            add(node, anchor: nil)
        case YAML_SEQUENCE_START_EVENT:
            stack.append(Open(isMapping: false, mark: at, anchor: Self.string(e.data.sequence_start.anchor)))
        case YAML_MAPPING_START_EVENT:
            stack.append(Open(isMapping: true, mark: at, anchor: Self.string(e.data.mapping_start.anchor)))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let done = stack.popLast() else { break }
            add(
                done.isMapping ? .mapping(done.pairs, done.mark) : .sequence(done.items, done.mark), anchor: done.anchor
            )
        default:
            break
        }
        return false
    }
}
