//! gantry-interop: no library code; its tests run gantry against clients other projects wrote.
