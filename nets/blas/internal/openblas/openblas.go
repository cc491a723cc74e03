//go:build openblas

package openblas

/*
#cgo LDFLAGS: -lopenblas
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);
*/
import "C"

// Threads returns the number of threads OpenBLAS uses for one call.
func Threads() int { return int(C.openblas_get_num_threads()) }

// SetThreads sets the number of threads OpenBLAS uses for one call.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(n)) }
