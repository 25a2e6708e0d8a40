package sandbox

// SetNoCgroups makes runs take the rlimit fallback, as on a host without
// delegated cgroups.
func SetNoCgroups(v bool) { noCgroups = v }
