"""Model families, one module each. Each registers itself with `@register_model(NAME)`;
genbench reads those declarations from the source (bench.registry) and imports a family's
module when a job uses it."""
