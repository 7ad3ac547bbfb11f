import Foundation
import LaneModel
import LaneState
import LaneSupervisor

/// Resolves a lane's credentials to values. A missing one refuses the step, naming the
/// credential and the lane, never a value.
enum CredentialResolver {
    static func resolve(_ lane: Lane, secrets: SecretStore) -> Result<[CredentialValue], LanesError> {
        var out: [CredentialValue] = []
        for c in lane.credentials {
            let value: [UInt8]?
            switch c.source {
            case let .secret(name):
                do { value = try secrets.get(name) } catch {
                    return .failure(LanesError(.notFound, stage: "credentials", "lane \(lane.name): credential \(c.name): \(error.message)"))
                }
                if value == nil {
                    return .failure(LanesError(.notFound, stage: "credentials", "lane \(lane.name): credential \(c.name): secret \"\(name)\" is not set (lanes secret set \(name))"))
                }
            case let .environment(variable):
                value = ProcessInfo.processInfo.environment[variable].map { Array($0.utf8) }
                if value == nil {
                    return .failure(LanesError(.notFound, stage: "credentials", "lane \(lane.name): credential \(c.name): the supervisor's environment has no \(variable)"))
                }
            case let .file(path):
                value = FileManager.default.contents(atPath: path).map { Array($0) }
                if value == nil {
                    return .failure(LanesError(.notFound, stage: "credentials", "lane \(lane.name): credential \(c.name): cannot read \(path)"))
                }
            }
            out.append(CredentialValue(name: c.name, delivery: c.delivery, value: value ?? []))
        }
        return .success(out)
    }
}
