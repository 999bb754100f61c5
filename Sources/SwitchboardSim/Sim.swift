// SwitchboardSim: the deterministic simulation driver (placeholder until it lands).
