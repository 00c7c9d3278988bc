"""The reference apps the receiver is measured against."""
