//go:build race

package seed

// raceEnabled: under the race detector, pure-Go xz is about 15 times
// slower, so TestFullSeed builds the seed once (checked against the golden
// digest) instead of twice.
const raceEnabled = true
