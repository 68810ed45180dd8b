"""Data entry (§11.3.4.7 a–b, §11.3.4.9 b): versioned form records with reasons, edit checks,
SDV and queries (§11.3.2 f, §11.3.4.7 e), REDCap CSV bulk import and ODM/CSV exports."""
