"""Operations tools: dead letters, and later metrics, health and the scheduler lock."""
