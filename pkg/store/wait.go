package store

import "time"

func after(ms int) <-chan time.Time { return time.After(time.Duration(ms) * time.Millisecond) }
