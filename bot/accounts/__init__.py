"""Who may sign in (staff of an association, desk agents) and how a messaging account is linked to a member."""
