public enum RSAgentVersion { public static let string = "0.1.0" }
