package boot

// x86_64, and i386 through int 0x80 (a 32-bit program in the root tree).
var filterTables = []archTable{
	{audit: 0xc000003e, x32: true, rules: rules(map[string]uint32{
		"chmod": 90, "open": 2, "openat": 257, "creat": 85, "mkdir": 83, "mkdirat": 258, "mknod": 133, "mknodat": 259, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452,
		"setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "setxattrat": 463,
		"keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
		"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 246, "kexec_file_load": 320,
		"init_module": 175, "finit_module": 313, "delete_module": 176, "open_by_handle_at": 304, "ioctl": 16,
		"mount": 165, "umount2": 166, "pivot_root": 155, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
	})},
	{audit: 0x40000003, rules: rules(map[string]uint32{
		"chmod": 15, "open": 5, "openat": 295, "creat": 8, "mkdir": 39, "mkdirat": 296, "mknod": 14, "mknodat": 297, "fchmod": 94, "fchmodat": 306, "fchmodat2": 452,
		"setxattr": 226, "lsetxattr": 227, "fsetxattr": 228, "setxattrat": 463,
		"keyctl": 288, "add_key": 286, "request_key": 287, "bpf": 357, "perf_event_open": 336, "userfaultfd": 374,
		"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 283,
		"init_module": 128, "finit_module": 350, "delete_module": 129, "open_by_handle_at": 342, "ioctl": 54, "umount": 22,
		"mount": 21, "umount2": 52, "pivot_root": 217, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
	})},
}
