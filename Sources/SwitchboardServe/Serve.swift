// SwitchboardServe (placeholder until it lands).
