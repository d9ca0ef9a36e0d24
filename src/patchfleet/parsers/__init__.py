"""Pure parsers, one module per tool: text in, typed facts out. A line a parser does not
understand raises :class:`patchfleet.errors.ParseError`; nothing is silently skipped."""
