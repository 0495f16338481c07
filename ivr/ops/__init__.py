"""Operations: metrics, logs, health, the deployment checks, recordings retention and erasure."""
