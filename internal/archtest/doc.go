// Package archtest holds a test that enforces the dependency rules of
// ARCHITECTURE: which top-level areas may import which.
package archtest
