package boot

// aarch64 (the generic table; 32-bit ARM programs are killed).
var filterTables = []archTable{
	{audit: 0xc00000b7, rules: rules(map[string]uint32{
		"fchmod": 52, "openat": 56, "mkdirat": 34, "mknodat": 33, "fchmodat": 53, "fchmodat2": 452,
		"setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "setxattrat": 463,
		"keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
		"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 104, "kexec_file_load": 294,
		"init_module": 105, "finit_module": 273, "delete_module": 106, "open_by_handle_at": 265, "ioctl": 29,
		"mount": 40, "umount2": 39, "pivot_root": 41, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
	})},
}
