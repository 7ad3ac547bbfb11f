// The journal store (issue 4) lives here.
