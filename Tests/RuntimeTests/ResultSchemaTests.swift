import Foundation
import LaneTestSupport
import Testing

/// Every `--json` result, whether the step ran, was replayed, failed to start or was refused,
/// has the one shape docs/step-result.schema.json describes.
@Suite("The JSON result has one shape")
struct ResultSchemaTests {
    static var schema: [String: Any] {
        let path = LanesCLI.packageRoot.path + "/docs/step-result.schema.json"
        let data = FileManager.default.contents(atPath: path) ?? Data()
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// JSONSerialization's booleans are the one NSNumber class whose name says so.
    static func isBoolean(_ value: Any) -> Bool { String(describing: type(of: value)).contains("Boolean") }

    /// The problems of `value` against `schema` (the subset of JSON Schema the file uses:
    /// type, enum, required, properties, additionalProperties false, items).
    static func problems(_ value: Any, _ schema: [String: Any], at path: String = "$") -> [String] {
        var out: [String] = []
        if let options = schema["enum"] as? [Any] {
            let matches = options.contains { option in
                (option is NSNull && value is NSNull) || ((option as? String).map { $0 == value as? String } ?? false)
            }
            if !matches { out.append("\(path): \(value) is not one of \(options)") }
        }
        if let t = schema["type"] {
            let types = (t as? [String]) ?? [(t as? String) ?? ""]
            if !types.contains(where: { matches(value, $0) }) { out.append("\(path): expected \(types), found \(value)") }
        }
        if let object = value as? [String: Any] {
            for key in (schema["required"] as? [String]) ?? [] where object[key] == nil { out.append("\(path): missing \(key)") }
            let properties = (schema["properties"] as? [String: Any]) ?? [:]
            for (key, v) in object {
                if let sub = properties[key] as? [String: Any] {
                    out += problems(v, sub, at: path + "." + key)
                } else if schema["additionalProperties"] as? Bool == false {
                    out.append("\(path): \(key) is not in the schema")
                }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (i, v) in array.enumerated() { out += problems(v, items, at: "\(path)[\(i)]") }
        }
        return out
    }

    static func matches(_ value: Any, _ type: String) -> Bool {
        switch type {
        case "null": return value is NSNull
        case "string": return value is String
        case "boolean": return isBoolean(value)
        case "integer": return !isBoolean(value) && ((value as? NSNumber).map { $0.doubleValue == $0.doubleValue.rounded() } ?? false)
        case "number": return !isBoolean(value) && value is NSNumber
        case "object": return value is [String: Any]
        case "array": return value is [Any]
        default: return false
        }
    }

    @Test("a run, a replay, a failure to start, a usage refusal and a gate refusal all validate")
    func everyShapeValidates() throws {
        #expect(!Self.schema.isEmpty, "the schema file must parse")
        let dir = try LanesCLI.temporaryDirectory("schema")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let env = ["LANES_STATE": dir + "/state"]
        func run(_ args: [String]) throws -> (Int32, [String: Any]) {
            let out = try LanesCLI.run(["run"] + args, cwd: dir, environment: env)
            let object = try #require(try JSONSerialization.jsonObject(with: out.stdoutBytes) as? [String: Any], "\(out.stdout) \(out.stderr)")
            return (out.status, object)
        }
        let cases: [(String, [String], Int32, String)] = [
            ("ran", ["engineering", "--run", "s", "--step", "a", "--json", "--", "sh", "-c", "echo hi; exit 2"], 2, "exited"),
            ("replayed", ["engineering", "--run", "s", "--step", "a", "--json", "--", "sh", "-c", "echo hi; exit 2"], 2, "exited"),
            ("nondeterministic", ["engineering", "--run", "s", "--step", "a", "--json", "--", "true"], 75, "refused"),
            ("other lane", ["extraction", "--run", "s", "--json", "--", "true"], 64, "refused"),
            ("gated", ["engineering", "--run", "s", "--json", "--", "git", "push", "origin"], 78, "refused"),
            ("no such lane", ["nosuch", "--json", "--", "true"], 125, "failed_to_start"),
        ]
        for (name, args, status, outcome) in cases {
            let (got, object) = try run(args)
            #expect(got == status, "\(name): status \(got)")
            #expect(object["outcome"] as? String == outcome, "\(name): \(object)")
            #expect(object["exit_status"] as? Int == Int(status), "\(name)")
            let problems = Self.problems(object, Self.schema)
            #expect(problems.isEmpty, "\(name): \(problems)")
        }
    }
}
