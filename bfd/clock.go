package bfd

import "time"

// Clock abstracts time for deterministic tests. Package bfdtest has a fake.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the part of *time.Timer that sessions use.
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

type realClock struct{}

// RealClock returns a Clock backed by package time.
func RealClock() Clock { return realClock{} }

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
