/// A small length-prefixed binary encoding of `SpawnPlan`. It is hand-written because the helper
/// that decodes it links no Foundation (start-up time is most of a step's cost), and the format
/// is private to one build of Lanes: `lanes` and `lane-init` always come from the same build.
public enum PlanCodec {
    static let magic: UInt32 = 0x4C41_4E31  // "LAN1"

    /// Encodes a plan.
    public static func encode(_ plan: SpawnPlan) -> [UInt8] {
        var w = ByteWriter()
        w.u32(magic)
        w.command(StepCommand(argv: plan.argv, environment: plan.environment, workdir: plan.workdir))
        w.string(plan.hostname)
        w.u32(UInt32(plan.mounts.count))
        for m in plan.mounts { w.mount(m) }
        w.u32(UInt32(plan.rlimits.count))
        for r in plan.rlimits {
            w.u32(UInt32(bitPattern: r.resource))
            w.u64(r.soft)
            w.u64(r.hard)
        }
        w.bytes(plan.seccompFilter)
        w.u32(plan.sandboxUid)
        w.u32(plan.sandboxGid)
        w.u32(plan.loopbackUp ? 1 : 0)
        w.u32(UInt32(plan.egressPort))
        w.u32(plan.awaitsCommand ? 1 : 0)
        w.bytes(plan.toolAffinity)
        return w.out
    }

    /// Decodes a plan; throws on any malformed input rather than guessing.
    public static func decode(_ bytes: [UInt8]) throws(PlanDecodingError) -> SpawnPlan {
        var r = ByteReader(input: bytes)
        guard try r.u32() == magic else { throw PlanDecodingError(offset: 0) }
        let command = try r.command()
        let hostname = try r.string()
        var mounts: [MountStep] = []
        for _ in 0..<(try r.count()) { mounts.append(try r.mount()) }
        var limits: [ResourceLimit] = []
        for _ in 0..<(try r.count()) {
            limits.append(ResourceLimit(resource: Int32(bitPattern: try r.u32()), soft: try r.u64(), hard: try r.u64()))
        }
        let filter = try r.bytes()
        let uid = try r.u32()
        let gid = try r.u32()
        let lo = try r.u32() == 1
        let egress = try r.u32()
        guard egress <= UInt32(UInt16.max) else { throw PlanDecodingError(offset: r.offset) }
        let awaits = try r.u32()
        guard awaits <= 1 else { throw PlanDecodingError(offset: r.offset - 4) }
        let affinity = try r.bytes()
        guard affinity.count <= 1024 else { throw PlanDecodingError(offset: r.offset) }
        guard r.offset == bytes.count else { throw PlanDecodingError(offset: r.offset) }
        var plan = SpawnPlan(argv: command.argv, environment: command.environment, workdir: command.workdir, hostname: hostname,
                             mounts: mounts, rlimits: limits, seccompFilter: filter,
                             sandboxUid: uid, sandboxGid: gid, loopbackUp: lo, egressPort: UInt16(egress),
                             awaitsCommand: awaits == 1)
        plan.toolAffinity = affinity
        return plan
    }

    static let commandMagic: UInt32 = 0x4C43_4D31  // "LCM1"

    /// Encodes the command a prestarted sandbox waits for.
    public static func encode(_ command: StepCommand) -> [UInt8] {
        var w = ByteWriter()
        w.u32(commandMagic)
        w.command(command)
        return w.out
    }

    /// Decodes a command; throws on any malformed input.
    public static func decodeCommand(_ bytes: [UInt8]) throws(PlanDecodingError) -> StepCommand {
        var r = ByteReader(input: bytes)
        guard try r.u32() == commandMagic else { throw PlanDecodingError(offset: 0) }
        let command = try r.command()
        guard r.offset == bytes.count else { throw PlanDecodingError(offset: r.offset) }
        return command
    }
}

/// A plan that could not be decoded, with the byte offset where decoding stopped.
public struct PlanDecodingError: Error, Equatable {
    public let offset: Int
}

extension ByteWriter {
    /// argv, environment, working directory: the start of a plan, and all of a `StepCommand`.
    mutating func command(_ c: StepCommand) {
        strings(c.argv)
        strings(c.environment)
        string(c.workdir)
    }
    mutating func mount(_ m: MountStep) {
        switch m {
        case let .tmpfs(target, size, mode): u32(1); string(target); u64(size); u32(mode)
        case let .bind(source, target, ro, optional):
            u32(2); string(source); string(target); u32((ro ? 1 : 0) | (optional ? 2 : 0))
        case let .proc(target): u32(3); string(target)
        case let .devices(target): u32(4); string(target)
        case let .symlink(destination, target): u32(5); string(destination); string(target)
        case let .file(target, contents, mode): u32(6); string(target); bytes(contents); u32(mode)
        case let .directory(target, mode): u32(7); string(target); u32(mode)
        case let .remountReadOnly(target): u32(8); string(target)
        case let .attach(target, index): u32(9); string(target); u32(index)
        case let .rebind(target, ro): u32(10); string(target); u32(ro ? 1 : 0)
        case let .overlay(lower, upper, work, target): u32(11); string(lower); string(upper); string(work); string(target)
        case let .overlayTrees(lower, layers, upper, work, target):
            u32(12); u32(lower); u32(layers); string(upper); string(work); string(target)
        }
    }
}

extension ByteReader {
    mutating func command() throws(PlanDecodingError) -> StepCommand {
        let argv = try strings(), environment = try strings()
        return StepCommand(argv: argv, environment: environment, workdir: try string())
    }
    mutating func mount() throws(PlanDecodingError) -> MountStep {
        switch try u32() {
        case 1: return .tmpfs(target: try string(), sizeBytes: try u64(), mode: try u32())
        case 2:
            let source = try string(), target = try string(), flags = try u32()
            return .bind(source: source, target: target, readOnly: flags & 1 != 0, optional: flags & 2 != 0)
        case 3: return .proc(target: try string())
        case 4: return .devices(target: try string())
        case 5: return .symlink(destination: try string(), target: try string())
        case 6: return .file(target: try string(), contents: try bytes(), mode: try u32())
        case 7: return .directory(target: try string(), mode: try u32())
        case 8: return .remountReadOnly(target: try string())
        case 9: return .attach(target: try string(), index: try u32())
        case 10: return .rebind(target: try string(), readOnly: try u32() == 1)
        case 11: return .overlay(lower: try string(), upper: try string(), work: try string(), target: try string())
        case 12:
            return .overlayTrees(lower: try u32(), layers: try u32(), upper: try string(), work: try string(), target: try string())
        default: throw PlanDecodingError(offset: offset)
        }
    }
}
