//! Unit tests of the store on in-memory and temporary databases.
