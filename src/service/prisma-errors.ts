// Recognizes the Prisma errors the service expects (unique violations), by their stable codes.

export function isUniqueViolation(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'P2002';
}
