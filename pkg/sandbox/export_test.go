package sandbox

// SetNoCgroups makes runs take the rlimit fallback, as on a host without
// delegated cgroups.
func SetNoCgroups(v bool) { noCgroups = v }

// CgroupDirs are the directories the runs' cgroups are made in.
func CgroupDirs() []string {
	var ds []string
	for _, c := range []*controller{cgroups().memory, cgroups().pids} {
		if c != nil {
			ds = append(ds, c.dir)
		}
	}
	return ds
}
