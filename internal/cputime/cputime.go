// Package cputime reads the CPU time of the calling OS thread, the clock
// goslim's benchmarks use on a shared machine: unlike wall time it does
// not count the time other processes take from the thread.
package cputime
