//! Domain templates (`domain-templates/`), rendered from values through the XML writer.
