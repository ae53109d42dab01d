"""Job types and a table the tests use to see what worker processes did."""
