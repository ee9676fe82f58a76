public enum RSAgentVersion { public static let string = "0.2.0" }
