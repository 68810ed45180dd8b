"""The retention review (§11.3.4.6 a4): five years after a study ends, and every five years
on, the data security office reviews its data and records a signed decision."""
