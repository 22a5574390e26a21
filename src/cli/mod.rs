//! Command-line front ends: `prae` and `prae-virsh`. They parse, validate, then call the library.
