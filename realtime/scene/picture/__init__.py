"""Pictures: reading a user's photo or drawing, finding its faces and their parts, and moving them."""
