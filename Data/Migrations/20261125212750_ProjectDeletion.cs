using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace SentryVibe.Data.Migrations
{
    /// <inheritdoc />
    public partial class ProjectDeletion : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "DeleteRequestedAt",
                table: "projects",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "DeletedAt",
                table: "projects",
                type: "timestamp with time zone",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "DeleteRequestedAt",
                table: "projects");

            migrationBuilder.DropColumn(
                name: "DeletedAt",
                table: "projects");
        }
    }
}
