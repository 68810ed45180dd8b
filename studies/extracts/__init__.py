"""Extract requests, tiered approval (PUF / LDS / RIF) and encrypted, signed transfers to
sponsors (SPEC §7–8; GB/T 39725-2020 §11.3.4.3, §11.3.4.5, §11.3.4.8, §11.4.2)."""
