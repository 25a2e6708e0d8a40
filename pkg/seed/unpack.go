package seed

import (
	"context"
	"errors"
)

// errNoUnpacker stands until pkg/archive (the hardened unpacker) and
// pkg/digest land; Build fails with it after fetching and verifying.
var errNoUnpacker = errors.New("unpack: pkg/archive not wired yet")

func unpackAll(ctx context.Context, lock *Lock, files map[string]string, tree string, o *options) error {
	return errNoUnpacker
}

func treeDigest(ctx context.Context, dir string) (string, error) { return "", errNoUnpacker }
